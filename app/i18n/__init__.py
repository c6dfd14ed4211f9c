"""English and Hindi: the languages, what is said in each, and which one a request or a shipment speaks."""
