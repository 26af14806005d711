// The worker-pool comparison, shared by demo/pool.html (browsers), bench/pool.js (Node, and
// Chromium through that page) and the pool tests: no DOM, no Node APIs. It embeds one batch of
// SENTENCES with each engine, in interleaved rounds, and reports sentences/s of each.

/** 32 sentences of mixed length and language: one batch. */
export const SENTENCES = [
  'The cat sits on the mat.',
  'A kitten rests on a rug by the fire.',
  'Paris is the capital and largest city of France.',
  'What is the capital of France?',
  'Stock markets fell sharply after the announcement of new tariffs.',
  'The recipe needs two eggs, a cup of flour and a pinch of salt.',
  'Knowledge graphs store facts as subject, predicate and object.',
  'He missed the last train and walked home in the rain.',
  'Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.',
  'Le chat est assis sur le tapis.',
  'Der schnelle braune Fuchs springt über den faulen Hund.',
  'The committee postponed its decision until the next quarterly meeting.',
  'A small language model can run entirely inside a web browser.',
  'Quantum chromodynamics describes the strong interaction between quarks and gluons.',
  'She planted tomatoes, basil and peppers in the garden this spring.',
  'The museum reopened after a two-year renovation of its east wing.',
  'Sentence embeddings map texts with similar meanings to nearby vectors.',
  'The river Seine flows through Paris before reaching the English Channel.',
  'Our flight was delayed by three hours because of a storm over the Alps.',
  'Please restart the router and check whether the light turns green.',
  'The orchestra played Beethoven’s ninth symphony to a full house.',
  'Glaciers in the region have lost a third of their volume since 1980.',
  'A balanced diet includes vegetables, whole grains, protein and fruit.',
  'The detective noticed that the clock on the mantelpiece had stopped.',
  'Compilers translate source code into instructions a processor can run.',
  'The marathon route passes the cathedral, the harbour and the old market.',
  'Bees communicate the location of flowers through a waggle dance.',
  'The startup raised a seed round to build tools for small farmers.',
  'Heavy snow closed the mountain pass for most of the week.',
  'The library lends e-books, audiobooks and even musical instruments.',
  'Volcanic ash can disrupt air traffic across an entire continent.',
  'After dinner we played chess until well past midnight.',
];

/**
 * Embeds `texts` with each engine in turn, `rounds` times, the order alternating each round so
 * neither engine always runs first; each measurement is `batches` consecutive calls.
 * @param {Record<string, { embed: (t: string[]) => Promise<Float32Array[]> }>} engines name -> engine (model loaded)
 * @returns {Promise<{ results: Record<string, { sentencesPerS: number, rounds: number[] }>, identical: boolean, maxAbsDiff: number }>}
 */
export async function compareEngines(engines, { texts = SENTENCES, rounds = 7, batches = 3, now = () => performance.now() } = {}) {
  const names = Object.keys(engines);
  const first = {};
  for (const n of names) first[n] = await engines[n].embed(texts); // warm-up, and the vectors compared
  const perRound = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...names].reverse() : names;
    for (const n of order) {
      const t0 = now();
      for (let b = 0; b < batches; b++) await engines[n].embed(texts);
      perRound[n].push((texts.length * batches) / ((now() - t0) / 1000));
    }
  }
  let maxAbsDiff = 0;
  let identical = true;
  const base = first[names[0]];
  for (const n of names.slice(1)) {
    for (let i = 0; i < base.length; i++) {
      for (let j = 0; j < base[i].length; j++) {
        const d = Math.abs(base[i][j] - first[n][i][j]);
        if (d !== 0) identical = false;
        maxAbsDiff = Math.max(maxAbsDiff, d);
      }
    }
  }
  const results = Object.fromEntries(names.map((n) => [n, { sentencesPerS: median(perRound[n]), rounds: perRound[n] }]));
  return { results, identical, maxAbsDiff };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
