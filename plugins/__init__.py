"""Host-application plugins (installed as the package `indexer.bundled_plugins`; see
`moodindex plugins install`)."""
