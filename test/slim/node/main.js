// A Node.js app with an npm dependency (ms, installed by npm into
// /app/node/node_modules): it formats and parses durations.
const ms = require('ms');
const pkg = require('ms/package.json');

console.log(`ms ${pkg.version}`);
console.log(ms('2 days'), ms('1.5h'), ms(60000), ms(ms('10 hours'), { long: true }));
