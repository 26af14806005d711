// The model catalog (data/models.json in the repository, shipped as dist/models.js): the models
// llmkg knows by id, their kind and files (name, size, sha256). The same list the `llmkg` CLI
// and scripts/fetch-models use, which lay a model's files out as <models dir>/<id>/<name>.
import catalog from '../dist/models.js';
import { LlmkgError } from './errors.js';

/** Every catalog model: { id, kind, label, files: [{ name, size, sha256 }], ... }. */
export const models = catalog.models;

/** The ids used when nothing names a model: { 'text-generation': id, embedding: id }. */
export const defaultModelIds = catalog.defaults;

/**
 * A `loadModel` spec for catalog model `id` whose files are under `base`: a directory in Node
 * (e.g. ~/.cache/llmkg/models) or a URL prefix in browsers (e.g. '/models'), as
 * `${base}/${id}/${name}`.
 */
export function catalogSpec(id, base) {
  const model = models.find((m) => m.id === id);
  if (!model) throw new LlmkgError('not-found', `${id} is not in the model catalog (ids: ${models.map((m) => m.id).join(', ')})`);
  const root = String(base).replace(/\/+$/, '');
  return { id, kind: model.kind, files: model.files.map(({ name }) => ({ name, url: `${root}/${id}/${name}` })) };
}
