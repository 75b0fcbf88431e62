"""Installing cmem in a project and on a machine: init, settings, registration, doctor."""
