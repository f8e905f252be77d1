// What to do with a file found infected, as clamonacc's flags say it (--remove, --move=DIR, --copy=DIR):
// chosen by the command line or by setup, carried out by src/actions/.
export type ActionOnFound =
  | { kind: "none" }
  | { kind: "remove" } // --remove
  | { kind: "move"; dir: string } // --move=DIR
  | { kind: "copy"; dir: string }; // --copy=DIR
