"""The chat command framework: grammar, command specs, context, roles, selectors, services, dispatcher."""
