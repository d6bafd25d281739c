// The command table. Each command lives in its own module in this folder.
import type { Command } from "../command.js";
import { kernelsInfo } from "./kernels-info.js";

export const commands: Command[] = [kernelsInfo];
