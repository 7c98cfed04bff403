//! Minimal client of an OpenAI-compatible chat endpoint (`POST /v1/chat/completions`) over
//! plain HTTP, for a model running next to the asker (llama.cpp server, Ollama, vLLM). The
//! question and the retrieved passages leave the asker's machine only to this endpoint.
//! HTTPS is refused: this client has no TLS, and sending passages in the clear to a remote
//! host would undo the privacy of the retrieval.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest response accepted (bytes).
const MAX_RESPONSE: u64 = 8 << 20;

/// An LLM call failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The URL is not `http://host[:port][/prefix]`.
    #[error("--llm-url must look like http://127.0.0.1:8080 (got {0:?}); https is not supported")]
    Url(String),
    /// Network failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The endpoint answered with an error or something unexpected.
    #[error("endpoint: {0}")]
    Response(String),
}

/// Splits `http://host:port/prefix` into (host:port, prefix without a trailing slash).
fn split_url(url: &str) -> Result<(String, String), LlmError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| LlmError::Url(url.into()))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(LlmError::Url(url.into()));
    }
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let path = path.trim_end_matches('/');
    // Accept both the server root and a URL that already ends in /v1.
    let prefix = match path {
        "" => "/v1".to_string(),
        p if p.ends_with("v1") => format!("/{p}"),
        p => format!("/{p}/v1"),
    };
    Ok((host, prefix))
}

/// The chat request: instructions, the passages, then the question.
pub fn request_body(model: &str, question: &str, passages: &[&str]) -> Value {
    let context: String = passages
        .iter()
        .enumerate()
        .map(|(i, p)| format!("[{}] {p}\n\n", i + 1))
        .collect();
    json!({
        "model": model,
        "temperature": 0.1,
        "messages": [
            {"role": "system", "content": "Answer the question using only the numbered passages. Cite passage numbers. Say so if they do not contain the answer."},
            {"role": "user", "content": format!("Passages:\n{context}Question: {question}")}
        ]
    })
}

/// Sends the question and passages to `url` and returns the model's answer.
pub fn complete(
    url: &str,
    model: &str,
    question: &str,
    passages: &[&str],
) -> Result<String, LlmError> {
    let (host, prefix) = split_url(url)?;
    let body = request_body(model, question, passages).to_string();
    let mut stream = TcpStream::connect(&host)?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    // HTTP/1.0 with Connection: close, so the body is delimited by the end of the stream
    // (no chunked transfer coding to parse).
    write!(
        stream,
        "POST {prefix}/chat/completions HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Extracts `choices[0].message.content` from a raw HTTP response.
pub fn parse_response(raw: &[u8]) -> Result<String, LlmError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| LlmError::Response("no HTTP header".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if !status
        .split_whitespace()
        .nth(1)
        .is_some_and(|c| c.starts_with('2'))
    {
        let brief: String = body.chars().take(300).collect();
        return Err(LlmError::Response(format!("{status}: {brief}")));
    }
    let v: Value =
        serde_json::from_str(body).map_err(|e| LlmError::Response(format!("not JSON: {e}")))?;
    v["choices"][0]["message"]["content"]
        .as_str()
        .map(|s| s.trim().to_string())
        .ok_or_else(|| LlmError::Response("no choices[0].message.content".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalised() {
        assert_eq!(
            split_url("http://127.0.0.1:8080").unwrap(),
            ("127.0.0.1:8080".into(), "/v1".into())
        );
        assert_eq!(
            split_url("http://localhost:11434/v1/").unwrap(),
            ("localhost:11434".into(), "/v1".into())
        );
        assert_eq!(
            split_url("http://h/api").unwrap(),
            ("h:80".into(), "/api/v1".into())
        );
        assert!(split_url("https://api.example.com").is_err());
        assert!(split_url("http://").is_err());
    }

    #[test]
    fn responses_are_parsed_or_refused() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"choices\":[{\"message\":{\"content\":\" veil. \"}}]}";
        assert_eq!(parse_response(ok).unwrap(), "veil.");
        assert!(parse_response(b"HTTP/1.0 500 Oops\r\n\r\nboom").is_err());
        assert!(parse_response(b"HTTP/1.0 200 OK\r\n\r\n{}").is_err());
        assert!(parse_response(b"garbage").is_err());
        let body = request_body("m", "q?", &["p1", "p2"]);
        assert!(
            body["messages"][1]["content"]
                .as_str()
                .unwrap()
                .contains("[2] p2")
        );
    }
}
