// The browser suite's page script, bundled as a user would bundle the library
// (esbuild or Vite, see browser.test.ts): exposes the cases to the test.
import { cases } from "./cases.js";

(globalThis as { migstreamCases?: typeof cases }).migstreamCases = cases;
document.title = "ready";
