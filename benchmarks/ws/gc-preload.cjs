// Preloaded (node --expose-gc -r …) into every server process of the idle-memory measurement, ours
// and the references alike: a collection every second, so that RSS reflects what connections
// hold, not garbage a lazy collector has not reclaimed yet (cluster and fork children inherit it).
if (typeof global.gc === 'function') setInterval(() => global.gc(), 1000).unref();
