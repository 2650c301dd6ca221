export const placeholder = 'counter-actor';
