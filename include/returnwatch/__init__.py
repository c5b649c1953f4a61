"""returnwatch."""
