//! Chat formats: which family a chat template belongs to, how that family writes tool
//! calls and reasoning, reading them out of a model's output as it is generated, and the
//! grammar that holds generation to valid calls of the request's tools. No llama.cpp
//! here: the engine supplies the JSON-schema converter.
//!
//! ```
//! use modelrunner_chat::{Family, Format, OutputReader};
//! let family = Family::detect("... <tool_call> ...");
//! assert_eq!(family, Family::Hermes);
//! let format = Format { calls: true, ..Format::for_family(family, "") };
//! let mut reader = OutputReader::new(format);
//! let mut content = String::new();
//! for piece in ["Let me look.\n<tool", "_call>\n{\"name\": \"get_weather\", ", "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"] {
//!     content.push_str(&reader.push(piece).content);
//! }
//! reader.finish();
//! assert_eq!(content, "Let me look.");
//! assert!(reader.has_calls());
//! ```
#![deny(missing_docs)]

mod family;
mod grammar;
mod json;
mod prompt;
mod read;
mod stream;
mod syntax;
mod tools;

pub use family::Family;
pub use grammar::{build as build_grammar, Constraint, Converter, GrammarError};
pub use prompt::{adapt_messages, generic_instructions, template_vars};
pub use read::{Call, Format, Parsed};
pub use stream::{CallDelta, Delta, OutputReader};
pub use syntax::{CallSyntax, Piece, ReasoningTags};
pub use tools::{Choice, Tool};
