export { ServiceMetrics, HTTP_BUCKETS } from './service-metrics';
export { MetricSignal } from './signal';
export { metricsHandler } from './endpoint';
export { trackRouteTemplates, routeLabel, httpMetricsMiddleware, type HttpObserver } from './http';
