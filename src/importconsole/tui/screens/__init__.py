"""One module per screen: compose, bindings, and handlers that call one operation each."""
