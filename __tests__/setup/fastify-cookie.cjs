// @fastify/cookie 11 loads the `cookie` package (ESM only) with a dynamic import(), which Jest's
// CommonJS module runtime refuses unless node runs with --experimental-vm-modules. jest.config.js
// maps '@fastify/cookie' here, and this loads the real plugin with Node's own require: the same
// code, only outside Jest's module registry. Nothing is replaced or faked. (Jest's own
// `require('node:module').createRequire` would resolve through Jest again, back to this file.)
const { createRequire } = process.getBuiltinModule('node:module');

module.exports = createRequire(module.filename)('@fastify/cookie');
