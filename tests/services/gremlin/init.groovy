// Run once by the gremlin-groovy script engine when Gremlin Server starts (as
// the distribution's scripts/empty-sample.groovy): binds the traversal source
// `g` over the graph `graph` (an empty TinkerTransactionGraph, see
// service.sh). Gremlin Server then serves `g` to the gremlin-lang engine too.
def globals = [:]
globals << [g : traversal().withEmbedded(graph)]
