export const placeholder = 'actor-runtime';
