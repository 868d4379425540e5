//! `dunewatch completions <shell>` and `dunewatch man`: shell completion
//! scripts and man pages, generated from the same clap definitions as
//! `--help`, so they never disagree with it.

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::io::Write;

/// Print a shell completion script for dunewatch on stdout.
///
/// Examples:
///   dunewatch completions bash > ~/.local/share/bash-completion/completions/dunewatch
///   dunewatch completions zsh > ~/.zfunc/_dunewatch
///   dunewatch completions fish > ~/.config/fish/completions/dunewatch.fish
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Print dunewatch's man page (roff) on stdout: the whole program's, or
/// one command's.
///
/// Examples:
///   dunewatch man > dunewatch.1 && man -l dunewatch.1
///   dunewatch man detect > dunewatch-detect.1
///   sudo sh -c 'dunewatch man > /usr/local/share/man/man1/dunewatch.1'
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {
    /// A command whose page to print instead (e.g. detect).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

pub fn run_completions(a: &CompletionsArgs) -> Result<()> {
    completions(a.shell, &mut std::io::stdout().lock())
}

pub fn run_man(a: &ManArgs) -> Result<()> {
    man(a.command.as_deref(), &mut std::io::stdout().lock())
}

fn completions(shell: Shell, out: &mut dyn Write) -> Result<()> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(shell, &mut cmd, "dunewatch", out);
    Ok(())
}

fn man(command: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let mut cmd = crate::Cli::command();
    // Building the tree gives each command its page name
    // ("dunewatch-detect") and the version.
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                super::limits::Usage(format!(
                    "no command '{name}' (commands: {})",
                    names.join(", ")
                ))
            })?;
            sub
        }
    };
    clap_mangen::Man::new(page).render(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn bash_completions_offer_every_command_and_detect_options() {
        let s = text(|o| completions(Shell::Bash, o));
        for sub in [
            "detect",
            "sites",
            "batch",
            "eval",
            "train",
            "completions",
            "man",
        ] {
            assert!(s.contains(sub), "bash completions lack {sub}");
        }
        assert!(s.contains("--before") && s.contains("--after") && s.contains("--out"));
        assert!(s.contains("complete -F"), "not a bash completion script");
    }

    #[test]
    fn every_shell_gets_a_script() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let s = text(|o| completions(shell, o));
            assert!(s.contains("detect"), "{shell}: no detect");
        }
    }

    #[test]
    fn the_man_page_is_roff_naming_the_commands() {
        let s = text(|o| man(None, o));
        assert!(
            s.starts_with(".ie") || s.contains("\n.TH "),
            "no .TH: {s:.200}"
        );
        assert!(s.contains(".TH dunewatch 1"));
        assert!(s.contains("detect") && s.contains("batch"));
        let d = text(|o| man(Some("detect"), o));
        assert!(d.contains(".TH dunewatch-detect 1"));
        assert!(d.contains("before"));
        let e = man(Some("nonsense"), &mut Vec::new()).unwrap_err();
        assert!(e.downcast_ref::<crate::cli::limits::Usage>().is_some());
        assert!(e.to_string().contains("no command 'nonsense'"));
    }

    #[test]
    fn the_man_page_renders_with_man() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("dunewatch.1");
        std::fs::write(&page, text(|o| man(None, o))).unwrap();
        let out = std::process::Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man is not installed: run scripts/setup-tests.sh (Debian package man-db)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains("NAME") && shown.contains("dunewatch"),
            "{shown}"
        );
        assert!(shown.contains("detect"), "{shown}");
    }
}
