// Unit test settings: jsdom for the component tests, node-free globals off (tests import from vitest).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: { environment: "jsdom", include: ["test/**/*.test.{ts,tsx}"] },
});
