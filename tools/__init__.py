"""The maintainers' tools (set-up, recording, notebook builds) and the dataset generator `tools.problems`,
which notebook 03 imports as `from tools import problems` once the course folder is on sys.path."""
