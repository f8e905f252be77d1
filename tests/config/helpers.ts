// Shared by the configuration tests: the ConfigError a call throws, failing the test when it throws none.
import { expect } from "bun:test";
import { ConfigError } from "../../src/errors.ts";

export function thrown(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}
