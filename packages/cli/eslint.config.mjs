import base from '../../eslint.config.mjs';

// bin/jetactor.js is a plain launcher of the built dist/main.js, outside the TypeScript project.
export default [...base, { ignores: ['bin/**'] }];
