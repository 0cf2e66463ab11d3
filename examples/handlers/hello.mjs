// An example handler module: WORKER_HANDLERS=./examples/handlers/hello.mjs loads it.
// A module's default export is one handler ({ type, handle }) or an array of them;
// in TypeScript, wrap it in defineHandler() from @redrive/sdk for the types.
export default {
  type: 'hello',
  async handle(job, ctx) {
    const name = job.payload?.name ?? 'world';
    ctx.log(`hello, ${name}`, { greeted: name });
  },
};
