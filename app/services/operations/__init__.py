"""Operations: promised dates and the SLA, alerts, the operations report and the live view of the field."""
