"""The HTTP layer the routes share: conditional GETs (`conditional`), HEAD (`head`), the hot
reads' validators (`validators`), their kept renderings (`renderings`, `single_flight`) and the
reads themselves (`hot_reads`)."""
