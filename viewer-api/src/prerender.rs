//! Renders the first frame of each instance of a study, as `/rendered`
//! without parameters gives it, when the study completes: the radiologist
//! opening it finds its pictures in the [`RenderCache`] instead of waiting
//! for each to be decoded and encoded.
//!
//! It follows the study event log from where it was when the process
//! started (the cache starts empty with each process: older studies are
//! rendered at their first request), on one blocking thread at a time, so
//! that a scanner sending meanwhile keeps the other core.

use crate::render::{Rendering, render};
use crate::render_cache::RenderCache;
use std::sync::Arc;
use std::time::Duration;
use telerad_store::events::{completions_after, newest_event_id};
use telerad_store::{Archive, Scope};
use tokio::sync::watch;

/// A study with more instances than this has only its first ones rendered
/// ahead: a whole-body scan would otherwise push every other study out of
/// the cache.
const MAX_INSTANCES: usize = 2_000;
/// How long the task waits when nothing rang, before looking again (the
/// log of another node of a shared database does not ring here).
const IDLE: Duration = Duration::from_secs(2);

/// Runs until `shutdown` turns true.
pub async fn run(
    archive: Arc<Archive>,
    cache: Arc<RenderCache>,
    mut shutdown: watch::Receiver<bool>,
) {
    let db = archive.index().database().clone();
    let mut bell = db.events_bell();
    let mut after = None;
    loop {
        match after {
            None => match newest_event_id(&db).await {
                Ok(id) => after = Some(id),
                Err(e) => tracing::warn!("prerendering: cannot read the event log: {e}"),
            },
            Some(from) => match completions_after(&db, from, 16).await {
                Ok(done) => {
                    let more = done.len() == 16;
                    for (id, study) in done {
                        after = Some(id);
                        prerender(&archive, &cache, &study, &shutdown).await;
                        if *shutdown.borrow() {
                            return;
                        }
                    }
                    if more {
                        continue;
                    }
                }
                Err(e) => tracing::warn!("prerendering: cannot read the event log: {e}"),
            },
        }
        tokio::select! {
            _ = bell.changed() => {}
            _ = tokio::time::sleep(IDLE) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Renders what is not in the cache yet of the newest version of each of
/// `study`'s instances, until a stop is asked.
pub async fn prerender(
    archive: &Archive,
    cache: &Arc<RenderCache>,
    study: &str,
    shutdown: &watch::Receiver<bool>,
) {
    let instances = match archive.index().instances_of(study, &Scope::All).await {
        Ok(instances) => instances,
        Err(e) => {
            tracing::warn!(study, "prerendering: cannot list the instances: {e}");
            return;
        }
    };
    // Older versions are never asked for: `/rendered` shows the newest.
    let mut newest: std::collections::HashMap<String, (i64, usize)> = Default::default();
    for (at, instance) in instances.iter().enumerate() {
        let entry = newest
            .entry(instance.sop_instance_uid.clone())
            .or_insert((instance.version, at));
        if instance.version > entry.0 {
            *entry = (instance.version, at);
        }
    }
    let todo: Vec<(String, std::path::PathBuf)> = instances
        .into_iter()
        .enumerate()
        .filter(|(at, i)| newest.get(&i.sop_instance_uid).map(|n| n.1) == Some(*at))
        .take(MAX_INSTANCES)
        .map(|(_, i)| {
            let absolute = archive.layout().absolute(&i.path);
            (i.path, absolute)
        })
        .collect();
    let cache = cache.clone();
    let stop = shutdown.clone();
    let started = std::time::Instant::now();
    let rendered = tokio::task::spawn_blocking(move || {
        let mut rendered = 0usize;
        for (path, absolute) in todo {
            if *stop.borrow() {
                break;
            }
            let key = RenderCache::key(&path, 1, &Rendering::DEFAULT);
            if cache.contains(&key) {
                continue;
            }
            // Objects without pixels (reports, presentation states) and
            // syntaxes not decoded here are simply left for the request.
            // Decoded frames are kept too: the reader's first new window
            // on this study costs no decoding either.
            match cache
                .decoded(&path, &absolute, 1)
                .map(|d| render(&d, &Rendering::DEFAULT))
            {
                Ok(Ok(picture)) => {
                    cache.insert(key, RenderCache::picture(picture));
                    rendered += 1;
                }
                Ok(Err(e)) => tracing::debug!(path, "prerendering: {e}"),
                Err(e) => tracing::debug!(path, "prerendering: {e}"),
            }
        }
        rendered
    })
    .await;
    match rendered {
        Ok(count) => tracing::info!(
            study,
            frames = count,
            ms = started.elapsed().as_millis() as u64,
            "first frames rendered ahead"
        ),
        Err(e) => tracing::warn!(study, "prerendering task failed: {e}"),
    }
}
