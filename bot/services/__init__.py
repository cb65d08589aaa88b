"""Operations on the store that commands and the CLI share (one transaction each, passed in)."""
