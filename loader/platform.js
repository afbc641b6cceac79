// `dione/platform` as bundlers see it: the real entry, dist/platform/index.js, is loaded by Node
// at run time, out of the bundler's sight (see dione.js in this folder for why).
const entry = import.meta.url.replace(/\/loader\/platform\.js$/, '/dist/platform/index.js');

export async function getPlatformProxy(options) {
  if (entry === import.meta.url) throw new Error(`dione/platform: cannot find dist/platform/index.js from ${import.meta.url}`);
  const platform = await import(/* webpackIgnore: true */ /* turbopackIgnore: true */ /* @vite-ignore */ entry);
  return platform.getPlatformProxy(options);
}
