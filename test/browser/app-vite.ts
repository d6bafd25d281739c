// The Vite build's page script: the worker script comes from Vite's
// `?worker&url` import and is handed to the pool (README, "Bundlers").
import workerUrl from "vfio-migstream/worker?worker&url";
import { cases } from "./cases.js";

(globalThis as { migstreamCases?: typeof cases }).migstreamCases = cases;
(globalThis as { migstreamWorkerUrl?: string }).migstreamWorkerUrl = workerUrl;
document.title = "ready";
