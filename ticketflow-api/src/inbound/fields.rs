//! A provider's form: `multipart/form-data` (files included) or
//! `application/x-www-form-urlencoded`.

use poem::{FromRequest, Request};
use ticketflow_core::email::EmailError;
use ticketflow_core::store::Attachment;

/// A form's text fields and files, in order.
#[derive(Debug, Default)]
pub(super) struct Fields {
    texts: Vec<(String, String)>,
    /// Files: the field they came in, and what they are.
    pub(super) files: Vec<(String, Attachment)>,
}

impl Fields {
    /// Reads the form of `req`, whichever of the two encodings it is in.
    pub(super) async fn read(req: Request) -> Result<Self, EmailError> {
        let content_type = req.content_type().unwrap_or_default().to_ascii_lowercase();
        let (req, mut body) = req.split();
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = poem::web::Multipart::from_request(&req, &mut body)
                .await
                .map_err(|e| EmailError::malformed("multipart", e.to_string()))?;
            let mut fields = Fields::default();
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| EmailError::malformed("multipart", e.to_string()))?
            {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let part_type = field.content_type().map(str::to_owned);
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| EmailError::malformed(name.clone(), e.to_string()))?;
                match file_name {
                    Some(file_name) => fields.files.push((
                        name,
                        Attachment {
                            name: Some(file_name),
                            content_type: part_type.unwrap_or_else(|| "application/octet-stream".into()),
                            size: bytes.len() as u64,
                        },
                    )),
                    None => fields.texts.push((name, String::from_utf8_lossy(&bytes).into_owned())),
                }
            }
            Ok(fields)
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            let bytes = body
                .take()
                .map_err(|e| EmailError::malformed("body", e.to_string()))?
                .into_vec()
                .await
                .map_err(|e| EmailError::malformed("body", e.to_string()))?;
            let texts = form_urlencoded_pairs(&bytes);
            Ok(Fields {
                texts,
                files: Vec::new(),
            })
        } else {
            Err(EmailError::malformed(
                "content-type",
                "must be multipart/form-data or application/x-www-form-urlencoded",
            ))
        }
    }

    /// The first text field named `name` (names compared case-insensitively), if present and
    /// not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(key, value)| key.eq_ignore_ascii_case(name) && !value.trim().is_empty())
            .map(|(_, value)| value.as_str())
    }

    /// A form of text fields, for tests.
    #[cfg(test)]
    pub(super) fn of(texts: &[(&str, &str)]) -> Self {
        Fields {
            texts: texts.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            files: Vec::new(),
        }
    }
}

/// `a=1&b=2` as pairs, percent-decoded (`+` is a space), invalid UTF-8 replaced.
fn form_urlencoded_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    fn decode(part: &[u8]) -> String {
        let mut out = Vec::with_capacity(part.len());
        let mut i = 0;
        while i < part.len() {
            match part[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < part.len() && part[i + 1].is_ascii_hexdigit() && part[i + 2].is_ascii_hexdigit() => {
                    let hex = [part[i + 1], part[i + 2]];
                    out.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap_or("00"), 16).unwrap_or(0));
                    i += 2;
                }
                other => out.push(other),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    bytes
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (decode(&pair[..eq]), decode(&pair[eq + 1..])),
            None => (decode(pair), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::form_urlencoded_pairs;

    #[test]
    fn urlencoded_forms_are_decoded() {
        let pairs = form_urlencoded_pairs(b"a=1+2&b=%3Cx%40y%3E&c&d=%zz&e=%4");
        assert_eq!(
            pairs,
            [
                ("a".into(), "1 2".into()),
                ("b".into(), "<x@y>".into()),
                ("c".into(), String::new()),
                ("d".into(), "%zz".into()),
                ("e".into(), "%4".into())
            ]
        );
    }
}
