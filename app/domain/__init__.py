"""Pure rules of the courier business: standard library only, no Flask, no database."""
