// Run as its own root process by the attack and crash tests: a fanotify group on a test tmpfs that holds
// the first open of a file or directory whose path contains argv[3] (or, written "=PATH", is exactly PATH)
// until a line arrives on stdin, so a race window stays open as long as the test needs (no timing luck).
// argv: mount path, pattern. Prints "ready", then "held <path>" when it holds an open, and "released"
// after answering it. Every other open is allowed at once; if this process dies, the kernel allows
// whatever it held.
import { readSync, readlinkSync } from "node:fs";
import {
  FAN_ALLOW,
  FAN_CLASS_CONTENT,
  FAN_CLOEXEC,
  FAN_MARK_ADD,
  FAN_MARK_FILESYSTEM,
  FAN_ONDIR,
  FAN_OPEN_PERM,
  ResponseWriter,
  fanotifyInit,
  fanotifyMark,
  forEachEvent,
} from "../../ffi/fanotify.ts";
import { AT_FDCWD, O_RDONLY } from "../../ffi/fcntl.ts";
import { libc, structBuffer } from "../../ffi/libc.ts";

const [mount, pattern] = process.argv.slice(2);
if (!mount || !pattern) throw new Error("usage: hold-open.ts MOUNT FRAGMENT|=PATH");
const matches = (path: string) => (pattern.startsWith("=") ? path === pattern.slice(1) : path.includes(pattern));

const group = fanotifyInit(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY);
fanotifyMark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM | FAN_ONDIR, AT_FDCWD, mount);
const responder = new ResponseWriter(group);
const buf = structBuffer(4096);
const view = new DataView(buf.buffer);
let held = false;
console.log("ready");

const waitForLine = () => {
  const one = Buffer.alloc(1);
  for (;;) {
    const n = readSync(0, one, 0, 1, null);
    if (n === 0 || one[0] === 0x0a) return;
  }
};

for (;;) {
  const len = libc.read(group, buf, buf.length);
  if (len <= 0) break;
  forEachEvent(view, len, (_mask, fd, _pid) => {
    let path = "";
    try {
      path = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      /* no path: allowed below */
    }
    const hold = !held && matches(path);
    if (hold) {
      held = true;
      console.log(`held ${path}`);
      waitForLine();
    }
    responder.respond(fd, FAN_ALLOW);
    libc.close(fd);
    if (hold) console.log("released");
  });
}
