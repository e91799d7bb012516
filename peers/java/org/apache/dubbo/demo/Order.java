package org.apache.dubbo.demo;

import java.io.Serializable;
import java.util.List;
import java.util.Map;

/** A nested POJO: a User, a List and a Map inside an object. */
public class Order implements Serializable {
    private static final long serialVersionUID = 1L;

    public long id;
    public User owner;
    public List<String> items;
    public Map<String, String> tags;

    public Order() {}
}
