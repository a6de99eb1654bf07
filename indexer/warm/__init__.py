"""Warm start for the quick read commands (`status`, `query`, `show`, `list`, `errors`).

Importing SQLAlchemy alone costs about 0.4 s of CPU on an ordinary core, more than a quick command
is allowed in all.  So, like Mercurial's `chg`, the first such command starts a small per-user
server in the background that has those imports done; later calls connect to it over a Unix
socket, hand over their arguments, environment, working directory and terminal (the file
descriptors themselves), and the server forks a child that runs the very same click command.
Nothing is cached between calls but imported code: each child opens the index afresh.

`client` is the `moodindex` entry point (stdlib only, so that it starts in milliseconds),
`server` the background process, `protocol` what both must agree on."""
