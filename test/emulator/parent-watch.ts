// Stop with the process that started us. npm does not pass its SIGTERM on to a script, and an npm (or shell, or test
// runner) killed with SIGKILL passes nothing on at all: its child is reparented and would keep its ports. Polling
// the parent PID is what Node offers (no PR_SET_PDEATHSIG).
//
// The parent is read when this module loads, before the program awaits anything: read later (after a server is up,
// say), a parent killed during start-up is already gone and the new parent (init, or a subreaper) would be watched.

const STARTED_BY = process.ppid;

/**
 * Calls `onGone` once, within `intervalMs`, after the process that started this one has exited. Started with no parent
 * of its own (PID 1), there is nothing to watch and it never calls. Returns a function that stops watching. The timer
 * does not keep the process alive.
 */
export function onParentExit(onGone: () => void, intervalMs = 250): () => void {
  if (STARTED_BY <= 1) return () => undefined;
  const check = () => {
    if (process.ppid === STARTED_BY) return;
    clearInterval(timer);
    onGone();
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  check();
  return () => clearInterval(timer);
}
