"""`python -m valgusml.synth.validation --preset realistic --n-athletes 200 --out reports/synth_validation`."""

from valgusml.synth.validation.cli import main

main()
