// A fake clock for timing code under test: `now` in ms, `advance` moves it,
// `sleep` moves it instead of waiting.
export function fakeClock() {
  let t = 1000;
  return {
    now: () => t,
    advance: (ms: number) => void (t += ms),
    sleep: async (ms: number) => void (t += ms),
  };
}
