//! Error text for people, for the command line's anyhow errors: the same
//! rule as the host's [`crate::errors::error_text`] (every cause said once,
//! see that module's header), over anyhow's chain, contexts included.

/// The error, its contexts and its causes, outermost first, joined with
/// `": "`; a cause whose text is already part of what was said is not
/// repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    crate::errors::chain_text(e.chain())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[derive(Debug, thiserror::Error)]
    #[error("card image {path}: cannot write: {source}")]
    struct Names {
        path: String,
        #[source]
        source: std::io::Error,
    }

    fn enoent() -> std::io::Error {
        std::io::Error::from_raw_os_error(2)
    }

    #[test]
    fn a_cause_the_message_already_names_is_said_once() {
        let e = Err::<(), _>(Names {
            path: "/x/y.json".into(),
            source: enoent(),
        })
        .context("opening the simulated card image")
        .unwrap_err();
        // The usual chain says the OS error twice.
        let os = enoent().to_string();
        assert_eq!(format!("{e:#}").matches(&os).count(), 2);
        let t = error_text(&e);
        assert_eq!(t.matches(&os).count(), 1, "{t}");
        assert_eq!(
            t,
            format!("opening the simulated card image: card image /x/y.json: cannot write: {os}")
        );
    }

    #[test]
    fn causes_not_named_are_kept_in_order() {
        let e = Err::<(), _>(enoent())
            .context("reading batch file b.jsonl")
            .context("loading the batch")
            .unwrap_err();
        assert_eq!(
            error_text(&e),
            format!(
                "loading the batch: reading batch file b.jsonl: {}",
                enoent()
            )
        );
    }
}
