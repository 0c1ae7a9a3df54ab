//! Query augmentation: concise descriptions of the entities a query mentions, read from the KB
//! ([`descriptions`]), written by an LLM when the KB has none and stored back with PROV-O
//! ([`describe`], over the chat clients of [`llm`]), and put into the paper's query format with
//! probability p_desc ([`render`]).

pub mod describe;
pub mod descriptions;
pub mod llm;
pub mod render;
