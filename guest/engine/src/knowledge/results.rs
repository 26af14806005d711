//! Query results in the standard formats: solutions and booleans in the SPARQL 1.1 result
//! formats (JSON, XML, CSV, TSV), graphs in the RDF formats. Oxigraph's own serializers do the
//! writing; this module only applies the row limit and names the media type. Every host (the
//! HTTP front's SPARQL protocol, the CLI's `--format`) gets its bytes from here.

use oxigraph::io::RdfSerializer;
use oxigraph::sparql::results::{QueryResultsFormat, QueryResultsSerializer};
use oxigraph::sparql::QueryResults;

use super::budget::Budget;
use super::{ox_format, EVALUATING};
use crate::error::{EngineError, Result};
use crate::types::{RdfFormat, ResultsFormat, SerializedResults};

fn results_format(f: ResultsFormat) -> QueryResultsFormat {
    match f {
        ResultsFormat::Json => QueryResultsFormat::Json,
        ResultsFormat::Xml => QueryResultsFormat::Xml,
        ResultsFormat::Csv => QueryResultsFormat::Csv,
        ResultsFormat::Tsv => QueryResultsFormat::Tsv,
    }
}

fn writing(e: std::io::Error) -> EngineError {
    EngineError::Internal(format!("serializing query results: {e}"))
}

/// Serializes `results`, at most `limit` solutions or triples, while `budget` lasts.
pub fn serialize(results: QueryResults, results_fmt: ResultsFormat, graph_fmt: RdfFormat, limit: usize, budget: &Budget) -> Result<SerializedResults> {
    let evaluation = |e| budget.error(EVALUATING, e);
    let mut truncated = false;
    let (media_type, data) = match results {
        QueryResults::Boolean(value) => {
            let format = results_format(results_fmt);
            let data = QueryResultsSerializer::from_format(format).serialize_boolean_to_writer(Vec::new(), value).map_err(writing)?;
            (format.media_type().to_string(), data)
        }
        QueryResults::Solutions(solutions) => {
            let format = results_format(results_fmt);
            let variables = solutions.variables().to_vec();
            let mut writer = QueryResultsSerializer::from_format(format).serialize_solutions_to_writer(Vec::new(), variables).map_err(writing)?;
            for (rows, solution) in solutions.enumerate() {
                budget.check()?;
                let solution = solution.map_err(evaluation)?;
                if rows == limit {
                    truncated = true;
                    break;
                }
                writer.serialize(&solution).map_err(writing)?;
            }
            (format.media_type().to_string(), writer.finish().map_err(writing)?)
        }
        QueryResults::Graph(triples) => {
            let format = ox_format(graph_fmt);
            let mut writer = RdfSerializer::from_format(format).for_writer(Vec::new());
            for (rows, triple) in triples.enumerate() {
                budget.check()?;
                let triple = triple.map_err(evaluation)?;
                if rows == limit {
                    truncated = true;
                    break;
                }
                writer.serialize_triple(&triple).map_err(writing)?;
            }
            (format.media_type().to_string(), writer.finish().map_err(writing)?)
        }
    };
    Ok(SerializedResults { media_type, data, truncated })
}
