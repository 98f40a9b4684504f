// Keeps a layer library non-empty while the layer has no sources of its own yet.
