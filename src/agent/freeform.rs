//! The free-form ReAct policy for capable chat models (any [`LlmClient`]: an OpenAI-compatible
//! endpoint such as Ollama, vLLM or the llama.cpp server, or a local GGUF): the model writes
//! `Thought:` / `Action:` / `Action Input:` or `Final Answer:`, and the reply is parsed strictly;
//! what cannot be read goes back to the model as an error.

use super::react::{Decision, Policy, State};
use super::tools::{Action, Toolbox, TOOL_DESCRIPTIONS};
use crate::augment::llm::{ChatMessage, ChatRequest, LlmClient};
use async_trait::async_trait;
use std::sync::Arc;

/// Longest observation text the model reads per step.
const MAX_OBSERVATION_CHARS: usize = 2_000;

/// The free-form policy.
pub struct FreeFormPolicy {
    llm: Arc<dyn LlmClient>,
}

impl FreeFormPolicy {
    /// The policy over `llm`.
    pub fn new(llm: Arc<dyn LlmClient>) -> Self {
        Self { llm }
    }
}

fn system_prompt() -> String {
    format!(
        "You answer questions of maintenance engineers about industrial assets (equipment, \
components, failure modes, sensors) from a knowledge graph, step by step. Each reply is either\n\
Thought: <one sentence>\nAction: <tool>\nAction Input: <JSON object>\n\
or, once the observations answer the question,\n\
Thought: <one sentence>\nFinal Answer: <answer>\n\
For a multiple-choice question the final answer starts with the option number (\"Final Answer: 2 - because ...\"). \
Read the question carefully: it may ask for the option that is NOT relevant.\n\
Tools (they only read the graph; nothing can change it):\n{TOOL_DESCRIPTIONS}"
    )
}

/// The conversation so far, in the model's format.
fn messages(state: &State<'_>) -> Vec<ChatMessage> {
    let mut question = format!("Question: {}", state.question.text);
    for (i, option) in state.question.options.iter().enumerate() {
        question.push_str(&format!("\n{}. {option}", i + 1));
    }
    let mut messages = vec![
        ChatMessage::system(system_prompt()),
        ChatMessage::user(question),
    ];
    for step in state.steps {
        let Some(action) = &step.action else { continue };
        messages.push(ChatMessage::assistant(format!(
            "Thought: {}\nAction: {}\nAction Input: {}",
            step.thought,
            action.tool(),
            action.input()
        )));
        let observation = step.observation.as_ref().map_or("", |o| o.text.as_str());
        let short: String = observation.chars().take(MAX_OBSERVATION_CHARS).collect();
        messages.push(ChatMessage::user(format!("Observation: {short}")));
    }
    if let Some((raw, error)) = state.last_error {
        messages.push(ChatMessage::assistant(raw));
        messages.push(ChatMessage::user(format!(
            "That reply could not be used: {error}. Reply again in the format: Thought / Action / Action Input, or Thought / Final Answer."
        )));
    }
    messages
}

/// The first balanced `{…}` of `text`.
fn json_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Reads one reply of the model. `options` is the number of answer options (0: open question).
pub fn parse_reply(reply: &str, options: usize, tools: &Toolbox) -> Decision {
    let malformed = |error: String| Decision::Malformed {
        raw: reply.to_owned(),
        error,
    };
    let thought = reply
        .split_once("Thought:")
        .map(|(_, rest)| rest)
        .unwrap_or(reply)
        .split(['\n'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if let Some((_, answer)) = reply.split_once("Final Answer:") {
        let answer = answer.trim().to_owned();
        if answer.is_empty() {
            return malformed("the final answer is empty".into());
        }
        let mut choice = None;
        if options > 0 {
            let number: String = answer
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            match number.parse::<usize>() {
                Ok(n) if (1..=options).contains(&n) => choice = Some(n - 1),
                _ => {
                    return malformed(format!(
                        "the final answer must start with an option number from 1 to {options}"
                    ))
                }
            }
        }
        let cite = tools
            .linker
            .mentions(&answer)
            .into_iter()
            .map(|m| m.iri)
            .collect();
        return Decision::Finish {
            thought,
            choice,
            text: answer,
            cite,
            candidates: Vec::new(),
        };
    }
    let Some((_, after_action)) = reply.split_once("Action:") else {
        return malformed("the reply has neither `Action:` nor `Final Answer:`".into());
    };
    let tool = after_action.lines().next().unwrap_or_default().trim();
    let Some((_, input_text)) = after_action.split_once("Action Input:") else {
        return malformed("`Action:` is not followed by `Action Input:`".into());
    };
    let Some(json) = json_object(input_text) else {
        return malformed("`Action Input:` is not followed by a JSON object".into());
    };
    let input: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => return malformed(format!("`Action Input:` is not valid JSON: {e}")),
    };
    match Action::parse(tool, input) {
        Ok(action) => Decision::Act {
            thought,
            action,
            candidates: Vec::new(),
        },
        Err(e) => malformed(e),
    }
}

#[async_trait]
impl Policy for FreeFormPolicy {
    fn name(&self) -> String {
        format!("react:{}", self.llm.model_id())
    }

    async fn decide(&self, state: &State<'_>, tools: &Toolbox) -> Result<(Decision, u64), String> {
        let mut request = ChatRequest::new(messages(state));
        request.max_tokens = 300;
        request.stop = vec!["Observation:".into()];
        let response = self.llm.chat(&request).await.map_err(|e| e.to_string())?;
        let tokens = u64::from(response.prompt_tokens.unwrap_or(0))
            + u64::from(response.completion_tokens.unwrap_or(0));
        Ok((
            parse_reply(&response.text, state.question.options.len(), tools),
            tokens,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::json_object;

    #[test]
    fn the_first_balanced_object_is_found() {
        assert_eq!(
            json_object("x {\"a\": {\"b\": \"}\"}} tail }"),
            Some("{\"a\": {\"b\": \"}\"}}")
        );
        assert_eq!(json_object("no object"), None);
        assert_eq!(json_object("{ unclosed"), None);
    }
}
