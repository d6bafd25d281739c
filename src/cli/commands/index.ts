// The command table. Each command lives in its own module in this folder.
import type { Command } from "../command.js";
import { bench } from "./bench.js";
import { decode } from "./decode.js";
import { demo } from "./demo.js";
import { encode } from "./encode.js";
import { inspect } from "./inspect.js";
import { kernelsInfo } from "./kernels-info.js";
import { restore } from "./restore.js";
import { save } from "./save.js";
import { sim } from "./sim.js";
import { verify } from "./verify.js";

export const commands: Command[] = [demo, save, restore, encode, decode, verify, inspect, sim, bench, kernelsInfo];
