// Where the Worker entry files are. Lives at the top of src/ (beside main.ts) on purpose: in the compiled
// binary every module shares main's URL, so "./workers/…" must resolve the same from here in both cases.
export const READER_WORKER = new URL("./workers/reader.ts", import.meta.url);
export const SCANNER_WORKER = new URL("./workers/scanner.ts", import.meta.url);
