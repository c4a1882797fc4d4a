// The demo's function: greets whoever the event names. Invoke it with
//   moatless invoke hello --payload '{"name":"you"}' --log
export const handler = async (event, context) => {
  const name = typeof event?.name === "string" ? event.name : "world";
  console.log(`greeting ${name}`);
  return {
    greeting: `hello, ${name}`,
    function: context.functionName,
    version: context.functionVersion,
    requestId: context.awsRequestId,
  };
};
