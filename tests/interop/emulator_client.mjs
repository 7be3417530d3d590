// node-opcua client against an anode-twin emulated PLC: browse, read, write in and out of
// range, and receive subscription updates. Prints one JSON object; exit code 0 unless the
// client itself fails (the Python test judges the results).
// Usage: node emulator_client.mjs <endpoint-url> <tool-name>
import {
  OPCUAClient, AttributeIds, DataType, TimestampsToReturn, ClientSubscription,
  ClientMonitoredItem, MessageSecurityMode, SecurityPolicy,
} from "node-opcua-client";

const [url, tool] = process.argv.slice(2);
const NS_URI = "urn:anode-twin:emulator";
const out = {};

const client = OPCUAClient.create({
  endpointMustExist: false,
  securityMode: MessageSecurityMode.None,
  securityPolicy: SecurityPolicy.None,
  connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
});

try {
  await client.connect(url);
  const session = await client.createSession();
  const nsArray = (await session.read({ nodeId: "i=2255", attributeId: AttributeIds.Value }))
    .value.value;
  const ns = nsArray.indexOf(NS_URI);
  out.namespaceIndex = ns;
  const id = (path) => `ns=${ns};s=${tool}.${path}`;

  // Browse: Objects/Machines/<tool> and the process-value folder.
  const machine = await session.browse(`ns=${ns};s=${tool}`);
  out.machineChildren = machine.references.map((r) => r.browseName.name).sort();
  const zone = await session.browse(id("Temperature.Zone1"));
  out.zoneChildren = zone.references.map((r) => r.browseName.name).sort();

  // Read PV, SP and the engineering units.
  const [pv, sp, eu] = await session.read([
    { nodeId: id("Temperature.Zone1.PV"), attributeId: AttributeIds.Value },
    { nodeId: id("Temperature.Zone1.SP"), attributeId: AttributeIds.Value },
    { nodeId: id("Temperature.Zone1.SP.EngineeringUnits"), attributeId: AttributeIds.Value },
  ]);
  out.pv = pv.value.value;
  out.spBefore = sp.value.value;
  out.unit = eu.value.value.displayName.text;

  // A supervisor writes the heartbeat first (the PLC runs its local recipe without one).
  out.heartbeat = (await session.write({
    nodeId: id("BatchControl.Heartbeat"), attributeId: AttributeIds.Value,
    value: { value: { dataType: DataType.UInt32, value: 1 } },
  })).name;

  // Writes: one in range, one out of range, one of the wrong type.
  let beat = 1;
  const write = async (value, dataType) => {
    // Keep the watchdog fed right before each write, as a supervisor's cycle would.
    await session.write({ nodeId: id("BatchControl.Heartbeat"), attributeId: AttributeIds.Value,
      value: { value: { dataType: DataType.UInt32, value: ++beat } } });
    return (await session.write({
      nodeId: id("Temperature.Zone1.SP"), attributeId: AttributeIds.Value,
      value: { value: { dataType, value } },
    })).name;
  };
  out.writeInRange = await write(455.5, DataType.Double);
  out.writeOutOfRange = await write(99999.0, DataType.Double);
  out.writeWrongType = await write(455, DataType.Int32);
  out.spAfter = (await session.read({ nodeId: id("Temperature.Zone1.SP"),
    attributeId: AttributeIds.Value })).value.value;

  // A method with a Double argument: AdjustHold on an idle furnace is refused by the PLC
  // (ReturnStatus BadInvalidState) while the call itself succeeds.
  const adjust = await session.call({
    objectId: id("BatchControl"), methodId: id("BatchControl.AdjustHold"),
    inputArguments: [{ dataType: DataType.Double, value: 30.0 }],
  });
  out.adjustHoldCall = adjust.statusCode.name;
  out.adjustHoldStatus = adjust.outputArguments[0].value.name;

  // Subscription: the pressure reading carries instrument noise, so it changes every scan.
  const sub = ClientSubscription.create(session, {
    requestedPublishingInterval: 50, requestedLifetimeCount: 100,
    requestedMaxKeepAliveCount: 10, maxNotificationsPerPublish: 100,
    publishingEnabled: true, priority: 1,
  });
  const values = [];
  const item = ClientMonitoredItem.create(sub,
    { nodeId: id("Pressure.PV"), attributeId: AttributeIds.Value },
    { samplingInterval: 0, discardOldest: true, queueSize: 10 }, TimestampsToReturn.Both);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no subscription updates in 10 s")), 10000);
    item.on("changed", (dv) => {
      values.push(dv.value.value);
      if (values.length >= 5) { clearTimeout(timer); resolve(); }
    });
  });
  out.notifications = values.length;
  out.distinctValues = new Set(values).size;
  await sub.terminate();
  await session.close();
  await client.disconnect();
  console.log(JSON.stringify(out));
} catch (err) {
  console.log(JSON.stringify({ ...out, error: String(err && err.message || err) }));
  try { await client.disconnect(); } catch { /* already down */ }
  process.exit(1);
}
