"""fenqi's own credit reference service (`fenqi bureau serve`): a separate process with its own
database, standing in for the PBOC credit reference center, Baihang or a US bureau."""
