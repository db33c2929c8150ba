// Shared by the playground and the blind compare: the runtime's replies arrive as server-sent
// events on a fetch() response body (POST, so EventSource won't do), and its errors as JSON.
(function () {
  "use strict";

  // Calls onEvent with each event's parsed `data:` line, in order, until the stream ends.
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut).split("\n").find((l) => l.startsWith("data: "));
        buffer = buffer.slice(cut + 2);
        if (line) onEvent(JSON.parse(line.slice(6)));
      }
    }
  }

  // The sentence shown for a refused request: the runtime's own message where it sent one.
  function describeError(status, body) {
    const error = (body && body.error) || {};
    if (status === 429) return "The model is busy; try again in a few seconds.";
    if (status === 503) return "The runtime is unavailable: " + (error.message || "try again shortly.");
    return error.message || "Request failed (" + status + ").";
  }

  window.quantdashEvents = { readEvents, describeError };
})();
