//! Reload the policy when its file changes. The folder is watched rather than
//! the file, because editors and deploy tools replace a file by renaming a new
//! one over it; changes are debounced so a save that writes twice reloads once.
//! Only changes count: opening or reading the file (which every reload does
//! itself) does not, and nor does an event after which the file holds what it
//! held before.
//!
//! A policy path that is a symbolic link (or passes through one, as a mounted
//! Kubernetes ConfigMap does: `policy.yaml -> ..data/policy.yaml`, with
//! `..data` swapped to a new folder on each update) is watched in every folder
//! along the way to the file it names, and any change in those folders is
//! looked at: such an update renames the link, never the file. The folders
//! are worked out again after each change, as the link may now lead elsewhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};

use crate::app::AppState;

/// The folder holding `path` (`.` for a bare file name).
fn folder(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The folders to watch for `path`, and whether it goes through a link.
fn folders(path: &Path) -> (BTreeSet<PathBuf>, bool) {
    let mut dirs = BTreeSet::from([folder(path)]);
    let mut at = path.to_path_buf();
    // Each hop of a chain of links (bounded: a loop of links ends here too).
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&at) else {
            break;
        };
        at = folder(&at).join(target);
        dirs.insert(folder(&at));
    }
    let linked = match std::fs::canonicalize(path) {
        Ok(real) => {
            let elsewhere = folder(&real) != folder(path) || real.file_name() != path.file_name();
            dirs.insert(folder(&real));
            elsewhere
        }
        Err(_) => dirs.len() > 1,
    };
    (dirs, linked)
}

/// Watch the folders `path` now needs (see [`folders`]) and no others;
/// whether it goes through a link.
fn follow(path: &Path, watcher: &mut impl Watcher, watched: &mut BTreeSet<PathBuf>) -> bool {
    let (wanted, linked) = folders(path);
    for gone in watched.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    for dir in wanted.difference(watched) {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot watch a folder of the policy file; reload with SIGHUP or the API");
        }
    }
    *watched = wanted;
    linked
}

pub async fn watch_policy(state: AppState) {
    let path = state.policy.path().to_path_buf();
    let Some(name) = path.file_name().map(|n| n.to_os_string()) else {
        return;
    };
    // (whether the event names the policy file) for each change.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event {
            if changes(&e.kind) {
                let names_it = e
                    .paths
                    .iter()
                    .any(|p| p.file_name() == Some(name.as_os_str()));
                let _ = tx.send(names_it);
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the policy file; reload with SIGHUP or the API");
            return;
        }
    };
    let mut watched = BTreeSet::new();
    let mut linked = follow(&path, &mut watcher, &mut watched);
    // What the file held at the last reload this started (none yet: the
    // first change is always looked at, as the file may have changed since
    // the server loaded it).
    let mut seen: Option<Option<Vec<u8>>> = None;
    while let Some(names_it) = rx.recv().await {
        if !names_it && !linked {
            continue;
        }
        // Let the writer finish, then take every change made meanwhile as one.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while rx.try_recv().is_ok() {}
        linked = follow(&path, &mut watcher, &mut watched);
        let now = Some(tokio::fs::read(&path).await.ok());
        if now == seen {
            continue;
        }
        seen = now;
        tracing::info!(file = %path.display(), "policy file changed: reloading");
        let _ = state.policy.reload().await;
    }
}

/// Whether an event may have changed what the file holds: anything but an
/// open or a read, and a close only after writing.
fn changes(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};

    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_linked_policy_is_watched_in_every_folder_on_its_way_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let plain = root.join("plain.yaml");
        std::fs::write(&plain, "x").unwrap();
        assert_eq!(folders(&plain), (BTreeSet::from([root.clone()]), false));
        // As a mounted ConfigMap: policy.yaml -> ..data/policy.yaml, ..data -> v1.
        let cm = root.join("cm");
        std::fs::create_dir_all(cm.join("v1")).unwrap();
        std::fs::write(cm.join("v1/policy.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("v1", cm.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/policy.yaml", cm.join("policy.yaml")).unwrap();
        let (dirs, linked) = folders(&cm.join("policy.yaml"));
        assert!(linked);
        assert!(
            dirs.contains(&cm) && dirs.contains(&cm.join("v1")),
            "{dirs:?}"
        );
        // A link into another folder.
        let other = root.join("other");
        std::fs::create_dir(&other).unwrap();
        std::os::unix::fs::symlink(&plain, other.join("p.yaml")).unwrap();
        assert_eq!(
            folders(&other.join("p.yaml")),
            (BTreeSet::from([root.clone(), other]), true)
        );
    }

    #[test]
    fn opening_or_reading_is_no_change() {
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ] {
            assert!(!changes(&kind), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(changes(&kind), "{kind:?}");
        }
    }
}
