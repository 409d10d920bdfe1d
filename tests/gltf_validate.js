// Validate one GLB/glTF file with the Khronos glTF-Validator and print its JSON report.
// Usage: node tests/gltf_validate.js model.glb
'use strict';
const fs = require('fs');
const path = require('path');
const validator = require('gltf-validator');

const file = process.argv[2];
const bytes = new Uint8Array(fs.readFileSync(file));
validator
  .validateBytes(bytes, {
    uri: path.basename(file),
    maxIssues: 100,
    // External resources are not allowed in our outputs: report them instead of loading them.
    externalResourceFunction: (uri) => Promise.reject(new Error(`external resource ${uri}`)),
  })
  .then((report) => {
    process.stdout.write(JSON.stringify(report));
  })
  .catch((error) => {
    process.stderr.write(String(error));
    process.exit(2);
  });
