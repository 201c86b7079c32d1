// Validates a vercel.json the way Vercel's own build does, offline: the routing
// keys against @vercel/routing-utils' JSON schemas (with ajv 6, as Vercel uses),
// then getTransformedRoutes, which compiles rewrites and headers into the routes
// Vercel serves (and reports bad patterns). Unknown top-level keys are errors.
// Usage: node check_vercel.js vercel.json  -> prints {"routes": [...]} or the errors (exit 1).
"use strict";
const fs = require("fs");
const Ajv = require("ajv");
const routing = require("@vercel/routing-utils");

// The vercel.json keys a static site with rewrites may use (vercel.com/docs/project-configuration).
const KNOWN_KEYS = new Set([
  "$schema", "buildCommand", "cleanUrls", "devCommand", "framework", "headers",
  "installCommand", "outputDirectory", "public", "redirects", "regions", "rewrites",
  "trailingSlash",
]);
const SCHEMAS = {
  cleanUrls: routing.cleanUrlsSchema,
  headers: routing.headersSchema,
  redirects: routing.redirectsSchema,
  rewrites: routing.rewritesSchema,
  trailingSlash: routing.trailingSlashSchema,
};

function check(config) {
  const errors = [];
  for (const key of Object.keys(config)) {
    if (!KNOWN_KEYS.has(key)) errors.push(`${key}: not a vercel.json property this check knows`);
  }
  const ajv = new Ajv({ allErrors: true });
  for (const [key, schema] of Object.entries(SCHEMAS)) {
    if (!(key in config)) continue;
    if (!ajv.validate(schema, config[key])) {
      errors.push(...ajv.errors.map((e) => `${key}${e.dataPath}: ${e.message}`));
    }
  }
  if (errors.length) return { errors };
  const { routes, error } = routing.getTransformedRoutes(config);
  if (error) return { errors: [`${error.code}: ${error.message}`] };
  return { routes };
}

const result = check(JSON.parse(fs.readFileSync(process.argv[2], "utf8")));
process.stdout.write(JSON.stringify(result, null, 2) + "\n");
process.exitCode = result.errors ? 1 : 0;
