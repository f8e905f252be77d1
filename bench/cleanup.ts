// What a benchmark must undo when it is interrupted (Ctrl-C, SIGTERM): agents and clamd stopped by PID,
// tmpfs unmounted, temp directories removed. Each resource registers its undo and drops it when done.
const pending = new Set<() => unknown>();
let installed = false;

/** Registers `undo` to run on SIGINT/SIGTERM; the returned function unregisters it. */
export function onInterrupt(undo: () => unknown): () => void {
  if (!installed) {
    installed = true;
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.on(sig, async () => {
        console.error(`\n${sig}: cleaning up (${pending.size} resources)`);
        // Newest first: agents go before the clamd they use and the mounts they watch.
        for (const undoOne of [...pending].reverse()) {
          try {
            await undoOne();
          } catch (err) {
            console.error(`cleanup: ${err}`);
          }
        }
        process.exit(130);
      });
    }
  }
  pending.add(undo);
  return () => void pending.delete(undo);
}
