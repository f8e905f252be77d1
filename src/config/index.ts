// The public face of src/config/: load a clamd.conf (+ list files) into an OnaccConfig, or write one.
export { loadConfig, type ListFiles } from "./load.ts";
export { parseConfigText, type ParsedConfig } from "./parse.ts";
export { readPathList, type PathList } from "./lists.ts";
export { serializeConfig, type ConfigLine, type ConfigValue } from "./serialize.ts";
export { CLAMD_OPTION_NAMES } from "./clamd-options.ts";
export type { ClamdEndpoint, OnAccessOptions, OnaccConfig } from "./types.ts";
